// CapfiltWeights: placeholder until its first file lands.
