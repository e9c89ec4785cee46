"""BigDL model builders, training and persistence."""
