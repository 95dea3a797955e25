"""Running the jobs: the composition root (factory), the scheduler, the slot runner, the
long-lived service with its monitoring and notifications."""
