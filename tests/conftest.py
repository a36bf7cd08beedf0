import os
import sys

# Lets the tests import the pure-Python modules before the package is installed (or built).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
