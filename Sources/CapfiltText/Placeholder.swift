// CapfiltText: placeholder until its first file lands.
