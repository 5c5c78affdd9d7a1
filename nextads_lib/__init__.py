"""NextAds Study: generation-based personalized video advertising, reproduced.

The package is the library behind the notebooks: every model, API, file or video operation lives here.
Modules share the paper's words: ``director``, ``producer``, ``verifier``, ``reflector``, ``pcg``,
``pci``, ``judge``, ``vbench``.
"""

import warnings

# tqdm.auto in a kernel without ipywidgets warns once, on stderr of whichever cell first shows a bar; the bar
# falls back to text either way, and the warning would make that cell's output depend on the cells before it
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
