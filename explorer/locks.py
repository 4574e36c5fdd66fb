"""One process-wide lock for building models and for the first import of a page's libraries.

transformers builds a model under process-global patches that it saves and restores around
the build (``torch.nn.init`` functions, ``PreTrainedModel.init_weights`` and ``tie_weights``
replaced by no-ops, the meta device): two builds in two threads interleave their saves and
restores and leave a no-op in place for the process's life, after which every load fails
("Cannot copy out of meta tensor", missing MLM head keys). Its lazy module attributes and
model modules are imported on first use, and two threads importing modules that import each
other get a partly initialised module (AttributeError on ``transformers.AutoModel…``). A
class opening different pages of a fresh server at the same moment did both. So every build
and every first import of a page module holds this lock; forwards do not (each model has its
own lock for those).

Pure Python (no torch): the UI's page loader takes it before torch is imported.
"""

from __future__ import annotations

import threading

BUILD_LOCK = threading.RLock()
