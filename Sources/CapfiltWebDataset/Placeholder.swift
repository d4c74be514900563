// CapfiltWebDataset: placeholder until its first file lands.
