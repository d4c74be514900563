// CapfiltWeightsTests: placeholder until its first test lands.
