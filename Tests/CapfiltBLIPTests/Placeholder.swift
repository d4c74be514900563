// CapfiltBLIPTests: placeholder until its first test lands.
