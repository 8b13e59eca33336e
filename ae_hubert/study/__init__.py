"""The study: the paper's questions measured over seeds, resumable in pieces.

``config.py`` reads a study YAML and checks everything it will run; ``seed.py`` runs one seed's
schedules (``iterate``) and measurements (stages of the study); each hypothesis is one module
``hN.py`` (``hypotheses.py`` says what it defines), so adding one is a new module plus its schedules
in the study YAML; ``summary.py`` writes ``study.json``/``study.md``; ``pack.py`` carries a work dir
between machines; ``commands.py`` is the CLI of ``study``, ``study-pack`` and ``study-unpack``.
"""
