"""The Docker-free local runner: `template.yaml` served as API Gateway, SQS mappings and schedules."""
