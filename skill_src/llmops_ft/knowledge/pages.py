"""The twelve Unsloth docs pages the skill rests on: key, URL path under the docs root, and page title."""

from __future__ import annotations

from dataclasses import dataclass

DOCS_HOST = "unsloth.ai"
DOCS_ROOT = f"https://{DOCS_HOST}/docs/"


@dataclass(frozen=True)
class Page:
    """One docs page: ``key`` names its facts file, ``path`` its URL under ``DOCS_ROOT`` and its mirror file."""

    key: str
    path: str
    title: str
    # A condition every fact of this page carries unless the extractor gives a narrower one.
    condition: str | None = None

    @property
    def url(self) -> str:
        """The page's canonical URL (also the ``url`` of its facts)."""
        return DOCS_ROOT + self.path

    @property
    def filename(self) -> str:
        """The page's file in a mirror laid out like ``../shared/unsloth-docs/``."""
        return self.path + ".md"


PAGES: tuple[Page, ...] = (
    Page("lora-hyperparameters", "get-started/fine-tuning-llms-guide/lora-hyperparameters-guide",
         "LoRA fine-tuning Hyperparameters Guide"),
    Page("fine-tuning-guide", "get-started/fine-tuning-llms-guide", "Fine-tuning LLMs Guide"),
    Page("tutorial-ollama", "get-started/fine-tuning-llms-guide/tutorial-how-to-finetune-llama-3-and-use-in-ollama",
         "Tutorial: How to Finetune Llama-3 and Use In Ollama"),
    Page("datasets-guide", "get-started/fine-tuning-llms-guide/datasets-guide", "Datasets Guide"),
    Page("requirements", "get-started/fine-tuning-for-beginners/unsloth-requirements", "Unsloth Requirements"),
    Page("saving-gguf", "basics/inference-and-deployment/saving-to-gguf", "Saving to GGUF"),
    Page("saving-ollama", "basics/inference-and-deployment/saving-to-ollama", "Saving to Ollama"),
    Page("troubleshooting-inference", "basics/inference-and-deployment/troubleshooting-inference",
         "Troubleshooting Inference"),
    Page("troubleshooting-faq", "basics/troubleshooting-and-faqs", "Troubleshooting & FAQs"),
    Page("chat-templates", "basics/chat-templates", "Chat Templates"),
    Page("continued-pretraining", "basics/continued-pretraining", "Continued Pretraining", condition="scenario:cpt"),
    Page("finetuning-checkpoint", "basics/finetuning-from-last-checkpoint", "Finetuning from Last Checkpoint"),
)

PAGES_BY_KEY: dict[str, Page] = {page.key: page for page in PAGES}
