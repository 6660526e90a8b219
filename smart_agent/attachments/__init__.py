"""Files and images attached to a chat message: judged, bounded and turned into model content."""
