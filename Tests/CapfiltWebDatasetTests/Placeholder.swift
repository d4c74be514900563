// CapfiltWebDatasetTests: placeholder until its first test lands.
