// CapfiltCorpus: placeholder until its first file lands.
