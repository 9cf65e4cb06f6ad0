//! Recorded-style response bodies (shapes as OpenAI sends them; ids shortened where noted).

use crate::usage::Usage;

pub(super) const fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
    }
}

/// Non-streaming chat completion (pretty-printed, as the API returns it).
pub(super) const CHAT_JSON: &str = r#"{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_f5bdcc3276"
}
"#;
pub(super) const CHAT_JSON_USAGE: Usage = usage(19, 10);

/// The usage-only event of [`CHAT_SSE`], exactly as it appears in it.
pub(super) const CHAT_SSE_USAGE_EVENT: &str = concat!(
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
    "\n\n"
);

/// Streaming chat completion with `stream_options.include_usage`: `"usage":null` on every
/// content chunk, then the usage-only chunk, then `[DONE]`.
pub(super) const CHAT_SSE: &str = concat!(
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" How"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" can"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" I"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" help"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" you"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" today?"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);
pub(super) const CHAT_SSE_USAGE: Usage = usage(9, 12);

/// [`CHAT_SSE`]'s response streamed without `stream_options.include_usage`: no `usage` member
/// on any chunk and no usage-only chunk, what the client must receive when the gateway asked
/// for usage on its behalf.
pub(super) const CHAT_SSE_WITHOUT_INCLUDE_USAGE: &str = concat!(
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" How"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" can"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" I"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" help"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" you"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":" today?"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPHIyRqL1Wo3NnNvdhgsiu3U9XfQ","object":"chat.completion.chunk","created":1738960000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// The usage-only event of [`COMPLETIONS_SSE`].
pub(super) const COMPLETIONS_SSE_USAGE_EVENT: &str = concat!(
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":{"prompt_tokens":6,"completion_tokens":7,"total_tokens":13}}"#,
    "\n\n",
);

/// Streaming legacy completion (`/v1/completions`) with `stream_options.include_usage`:
/// `"usage":null` on every text chunk, then the usage-only chunk, then `[DONE]`.
pub(super) const COMPLETIONS_SSE: &str = concat!(
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":"\n\n","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":"Once","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":" upon","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":" a","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":" time","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":",","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null,"usage":{"prompt_tokens":6,"completion_tokens":7,"total_tokens":13}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);
pub(super) const COMPLETIONS_SSE_USAGE: Usage = usage(6, 7);

/// [`COMPLETIONS_SSE`]'s response streamed without `stream_options.include_usage`.
pub(super) const COMPLETIONS_SSE_WITHOUT_INCLUDE_USAGE: &str = concat!(
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":"\n\n","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":"Once","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":" upon","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":" a","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":" time","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":",","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    r#"data: {"id":"cmpl-B9MCa7dTqkfsRz3yqRPAtxsOyR8Lw","object":"text_completion","created":1741570011,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct:20230824-v2","system_fingerprint":null}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// The mock provider's chat stream with `include_usage` (keys sorted, `usage` last).
pub(super) const MOCK_CHAT_SSE: &str = concat!(
    r#"data: {"choices":[{"delta":{"content":"Hello","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk","usage":null}"#,
    "\n\n",
    r#"data: {"choices":[{"delta":{"content":" world"},"finish_reason":null,"index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk","usage":null}"#,
    "\n\n",
    r#"data: {"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk","usage":null}"#,
    "\n\n",
    r#"data: {"choices":[],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);
pub(super) const MOCK_CHAT_SSE_USAGE: Usage = usage(3, 2);

/// [`MOCK_CHAT_SSE`] without `include_usage`.
pub(super) const MOCK_CHAT_SSE_WITHOUT_INCLUDE_USAGE: &str = concat!(
    r#"data: {"choices":[{"delta":{"content":"Hello","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk"}"#,
    "\n\n",
    r#"data: {"choices":[{"delta":{"content":" world"},"finish_reason":null,"index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk"}"#,
    "\n\n",
    r#"data: {"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-mock-42","model":"mock-gpt","object":"chat.completion.chunk"}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// Streaming chat completion without `include_usage`: no `usage` member at all.
pub(super) const CHAT_SSE_NO_USAGE: &str = concat!(
    r#"data: {"id":"chatcmpl-AyPJ3Kj0aXcvGbYHMt9JXN1e8CqzR","object":"chat.completion.chunk","created":1738960104,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPJ3Kj0aXcvGbYHMt9JXN1e8CqzR","object":"chat.completion.chunk","created":1738960104,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":"Sure"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPJ3Kj0aXcvGbYHMt9JXN1e8CqzR","object":"chat.completion.chunk","created":1738960104,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-AyPJ3Kj0aXcvGbYHMt9JXN1e8CqzR","object":"chat.completion.chunk","created":1738960104,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// The usage-only event of [`CHAT_SSE_CRLF`], exactly as it appears in it.
pub(super) const CHAT_SSE_CRLF_USAGE_EVENT: &str = concat!(
    r#"data: {"id":"chatcmpl-8f2a","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":31,"completion_tokens":5,"total_tokens":36}}"#,
    "\r\n\r\n",
);

/// A chat stream with `\r\n` line endings, a keep-alive comment, an `event:` line and a
/// `data:` without the optional space (as some OpenAI-compatible servers send).
pub(super) const CHAT_SSE_CRLF: &str = concat!(
    ": keep-alive\r\n\r\n",
    r#"data: {"id":"chatcmpl-8f2a","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
    "\r\n\r\n",
    "event: message\r\n",
    r#"data:{"id":"chatcmpl-8f2a","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Bonjour"},"finish_reason":null}],"usage":null}"#,
    "\r\n\r\n",
    r#"data: {"id":"chatcmpl-8f2a","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" !"},"finish_reason":null}],"usage":null}"#,
    "\r\n\r\n",
    r#"data: {"id":"chatcmpl-8f2a","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
    "\r\n\r\n",
    r#"data: {"id":"chatcmpl-8f2a","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":31,"completion_tokens":5,"total_tokens":36}}"#,
    "\r\n\r\n",
    "data: [DONE]\r\n\r\n",
);
pub(super) const CHAT_SSE_CRLF_USAGE: Usage = usage(31, 5);

/// Responses API stream: usage only in `response.completed`, at `response.usage`
/// (`"usage":null` in the earlier `response` snapshots).
pub(super) const RESPONSES_SSE: &str = concat!(
    "event: response.created\n",
    r#"data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","created_at":1741290958,"status":"in_progress","error":null,"incomplete_details":null,"instructions":"You are a helpful assistant.","max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}}"#,
    "\n\n",
    "event: response.in_progress\n",
    r#"data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","created_at":1741290958,"status":"in_progress","error":null,"incomplete_details":null,"instructions":"You are a helpful assistant.","max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}}"#,
    "\n\n",
    "event: response.output_item.added\n",
    r#"data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
    "\n\n",
    "event: response.content_part.added\n",
    r#"data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":"Hi"}"#,
    "\n\n",
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":" there! How can I assist you today?"}"#,
    "\n\n",
    "event: response.output_text.done\n",
    r#"data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"text":"Hi there! How can I assist you today?"}"#,
    "\n\n",
    "event: response.content_part.done\n",
    r#"data: {"type":"response.content_part.done","sequence_number":7,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hi there! How can I assist you today?","annotations":[]}}"#,
    "\n\n",
    "event: response.output_item.done\n",
    r#"data: {"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there! How can I assist you today?","annotations":[]}]}}"#,
    "\n\n",
    "event: response.completed\n",
    r#"data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","created_at":1741290958,"status":"completed","error":null,"incomplete_details":null,"instructions":"You are a helpful assistant.","max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there! How can I assist you today?","annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48},"user":null,"metadata":{}}}"#,
    "\n\n",
);
pub(super) const RESPONSES_SSE_USAGE: Usage = usage(37, 11);

/// Embeddings: only `prompt_tokens` and `total_tokens`.
pub(super) const EMBEDDINGS_JSON: &str = r#"{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": [-0.006929283, -0.005336422, 0.024047505, -4.547132e-05, 0.0, 1E-7, -0.024047505, 0.01926128]
    },
    {
      "object": "embedding",
      "index": 1,
      "embedding": [0.015136525, -0.02003216, 3.9e+2, -0.003456236]
    }
  ],
  "model": "text-embedding-3-small",
  "usage": {
    "prompt_tokens": 8,
    "total_tokens": 8
  }
}"#;
pub(super) const EMBEDDINGS_JSON_USAGE: Usage = usage(8, 0);

/// `usage` in message content, in tool-call arguments, in a nested object, as a longer key and
/// after the real one, and strings ending in escaped backslashes: only the top-level one counts.
pub(super) const DECOY_JSON: &str = r#"{"id":"chatcmpl-decoy","object":"chat.completion","created":1741569952,"model":"gpt-4o","metadata":{"usage":{"prompt_tokens":1000,"completion_tokens":1000}},"my_usage":{"prompt_tokens":2000},"usage_":{"prompt_tokens":3000},"choices":[{"index":0,"message":{"role":"assistant","content":"Here is JSON: {\"usage\":{\"prompt_tokens\":999,\"completion_tokens\":999}} and \"usage\": {} and a path C:\\temp\\","tool_calls":[{"id":"call_1","type":"function","function":{"name":"report","arguments":"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5}}"}}]},"finish_reason":"tool_calls","usage":{"prompt_tokens":4000}}],"path":"\\","usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49,"completion_tokens_details":{"completion_tokens":500}},"extra":[{"usage":{"prompt_tokens":3}}],"response":{"choices":[],"detail":{"usage":{"prompt_tokens":6000}}},"note":"\"usage\":{\"prompt_tokens\":1}"}"#;
pub(super) const DECOY_JSON_USAGE: Usage = usage(42, 7);

/// The usage-only event of [`DECOY_SSE`].
pub(super) const DECOY_SSE_USAGE_EVENT: &str = concat!(
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":33,"total_tokens":153}}"#,
    "\n\n",
);

/// A tool-call stream whose arguments and content mention `usage`, with a decoy usage-looking
/// event nested in an object and one whose `choices` is not empty.
pub(super) const DECOY_SSE: &str = concat!(
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"report_usage","arguments":""}}]},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"usage\":{\"prompt_tokens\":"}}]},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"77,\"completion_tokens\":88}}"}}]},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n"},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls","usage":{"prompt_tokens":55}}],"usage":null,"x":{"usage":{"prompt_tokens":66}}}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":33,"total_tokens":153}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);
pub(super) const DECOY_SSE_USAGE: Usage = usage(120, 33);

/// Multi-byte UTF-8 content (CJK, emoji with a skin-tone modifier, a flag, escaped surrogates).
pub(super) const UTF8_JSON: &str = r#"{"id":"chatcmpl-utf8","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"你好，世界！👋🏽 こんにちは 🇫🇷 naïve café \ud83d\ude00 Ωμέγα"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":6,"total_tokens":17}}"#;
pub(super) const UTF8_JSON_USAGE: Usage = usage(11, 6);

/// The usage-only event of [`UTF8_SSE`].
pub(super) const UTF8_SSE_USAGE_EVENT: &str = concat!(
    r#"data: {"id":"chatcmpl-utf8s","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":15,"completion_tokens":8,"total_tokens":23}}"#,
    "\n\n",
);

pub(super) const UTF8_SSE: &str = concat!(
    r#"data: {"id":"chatcmpl-utf8s","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"你好"},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-utf8s","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"，世界！👋🏽"},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-utf8s","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":" 🇫🇷 “usage” — ½"},"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-utf8s","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":15,"completion_tokens":8,"total_tokens":23}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);
pub(super) const UTF8_SSE_USAGE: Usage = usage(15, 8);
