// CapfiltBLIP: placeholder until its first file lands.
