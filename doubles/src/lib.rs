//! Local doubles of model APIs (Bedrock, SageMaker runtime, OpenAI chat completions).
