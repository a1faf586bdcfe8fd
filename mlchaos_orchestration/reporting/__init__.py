"""Suite reports: the JSON journal, JUnit XML, the HTML scorecard, scores and intensity sweeps."""
