"""Results to the laboratory information system: HL7 v2.5.1 ORU^R01 messages built and validated with hl7apy,
sent over MLLP and/or written to a drop folder, with a queue that keeps what was not acknowledged."""
