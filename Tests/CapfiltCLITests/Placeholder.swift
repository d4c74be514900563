// CapfiltCLITests: placeholder until its first test lands.
