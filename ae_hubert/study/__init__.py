"""The study: the paper's questions measured over seeds, resumable in pieces.

``config.py`` reads a study YAML and plans everything it will run, checked before any work;
``run.py`` runs it; ``seed.py`` runs one seed's schedules (``iterate``) and measurements (stages of
the study); each hypothesis is one module ``hN.py`` (``hypotheses.py`` says what it defines), so
adding one is a new module plus its schedules in the study YAML; ``arms.py`` is what the armed ones
share; ``summary.py`` and ``plots.py`` write ``study.json``/``study.md`` and the figures;
``records.py`` is what a work dir records about itself; ``pack.py`` carries a work dir between
machines; ``commands.py`` is the CLI of ``study``, ``study-pack`` and ``study-unpack``.
"""
