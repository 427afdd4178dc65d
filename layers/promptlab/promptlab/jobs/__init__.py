"""Jobs: the state machine and every use case of a job's life, from accept to worker, sweeper and DLQ."""
