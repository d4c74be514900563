// CapfiltTextTests: placeholder until its first test lands.
