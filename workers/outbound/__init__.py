"""Events about recordings going out: signed Standard Webhooks deliveries to configured endpoints, and in-process reactions (entry points).

Knows nothing of jobs: workers.jobs names the job functions and hands these modules what they need."""
