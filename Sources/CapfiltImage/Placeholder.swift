// CapfiltImage: placeholder until its first file lands.
