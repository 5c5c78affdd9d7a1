"""NextAds Study: generation-based personalized video advertising, reproduced.

The package is the library behind the notebooks: every model, API, file or video operation lives here.
Modules share the paper's words: ``director``, ``producer``, ``verifier``, ``reflector``, ``pcg``,
``pci``, ``judge``, ``vbench``.
"""

__version__ = "0.1.0"
