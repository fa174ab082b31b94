"""python -m ntmkit.pretrained CHECKPOINT_OR_DIR TASK "COMMAND THAT TRAINED IT"
python -m ntmkit.pretrained record TASK [TASK ...]
python -m ntmkit.pretrained measure CHECKPOINT_OR_RUN_DIR

The first form writes the model part of a training checkpoint as the shipped model for TASK and
records, in manifest.json, the command that made it and its figures on 1,000 fresh sequences of
its training range (the shipped-model test checks them). The second measures shipped models
again, keeping their stored commands.
"""

import json
import sys

from . import export, measure, record

if len(sys.argv) == 3 and sys.argv[1] == "measure":
    print(json.dumps(measure(sys.argv[2]), indent=1))
elif len(sys.argv) >= 3 and sys.argv[1] == "record":
    for task in sys.argv[2:]:
        print(task, record(task))
elif len(sys.argv) == 4:
    print(export(sys.argv[1], sys.argv[2]))
    print(record(sys.argv[2], sys.argv[3]))
else:
    sys.exit("\n".join(__doc__.strip().splitlines()[:2]))
