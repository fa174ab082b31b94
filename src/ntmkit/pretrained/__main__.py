"""python -m ntmkit.pretrained CHECKPOINT_OR_DIR TASK "COMMAND THAT TRAINED IT"

Writes the model part of a training checkpoint as the shipped model for TASK and records, in
manifest.json, the command that made it and its cost on 1,000 fresh sequences of its training
range (the shipped-model test checks that figure).
"""

import sys

from . import export, record

if len(sys.argv) != 4:
    sys.exit(__doc__.strip().splitlines()[0])
print(export(sys.argv[1], sys.argv[2]))
print(record(sys.argv[2], sys.argv[3]))
