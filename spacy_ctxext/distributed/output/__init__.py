"""The output folder of a run: its parts, written exactly once by the actors (``store``),
what a rerun still has to do (``resume``), and the lock that keeps it to one run (``lock``)."""
