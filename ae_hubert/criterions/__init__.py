"""fairseq criteria of the plugin (fairseq does not auto-import criteria: ``ae_hubert`` does)."""
