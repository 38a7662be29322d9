"""kb_service: search over the car-insurance customer-service knowledge base."""

__version__ = "0.1.0"
