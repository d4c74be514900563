// CapfiltImageTests: placeholder until its first test lands.
