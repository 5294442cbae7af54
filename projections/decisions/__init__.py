"""The live decision index in memory, the views it keeps, and its snapshots."""
