"""gptoss-lab: run OpenAI's gpt-oss models with vLLM, from a notebook."""
