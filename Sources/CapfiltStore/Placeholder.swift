// CapfiltStore: placeholder until its first file lands.
