// CapfiltDigest: placeholder until its first file lands.
