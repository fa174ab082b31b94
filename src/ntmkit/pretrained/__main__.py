import sys

from . import export

if len(sys.argv) != 3:
    sys.exit("usage: python -m ntmkit.pretrained CHECKPOINT_OR_DIR TASK")
print(export(sys.argv[1], sys.argv[2]))
