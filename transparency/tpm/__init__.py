"""TPM 2.0 enrolment, the service's side: evidence checked with no TPM (structures, credentials, EK chains) and
the six gates of ``POST /v1/enrol/submit`` (docs/tpm.md)."""
