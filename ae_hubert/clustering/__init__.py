"""Stage 3: k-means on dumped features, frame labels, and label quality against phones."""
