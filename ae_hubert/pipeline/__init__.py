"""Stage 7: drivers that chain the sidecar tools and fairseq training into HuBERT iterations."""
