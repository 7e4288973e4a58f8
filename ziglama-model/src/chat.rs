//! Chat templates: the GGUF `tokenizer.chat_template` rendered over a conversation.
