"""EEG report curation: lenient EDF reading, archive generation, report extraction, de-identification, pairing."""
