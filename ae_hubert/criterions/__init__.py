"""fairseq criteria of the plugin (``ae_hubert.register`` imports them: fairseq does not auto-import criteria)."""
