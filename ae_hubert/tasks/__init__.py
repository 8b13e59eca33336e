"""fairseq tasks of the plugin (``ae_hubert.register`` imports them; fairseq imports every module here
when it loads the user dir)."""
