"""Stage 2: frame features (MFCC for iteration 1, HuBERT layers afterwards) in fairseq's dump format."""
