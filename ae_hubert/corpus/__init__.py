"""Stage 1: the offline demo corpus (synthesised speech with phone, word and voice labels)."""
