"""ae_hubert: a fairseq plugin (``common.user_dir``) for HuBERT iterations and layer analysis.

Importing the package (as a fairseq user dir or from any tool) makes fairseq checkpoints load
under torch's weights-only unpickler and registers every task, model and criterion.
fairseq only auto-imports ``tasks/`` and ``models/`` of a user dir, and skips even those when the
package was imported first, so all registrations happen here.
"""
from . import compat

compat.install()

from . import criterions, models, tasks  # noqa: E402,F401  (registration)
