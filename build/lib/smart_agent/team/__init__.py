"""The Team profile: several agents work on a message at once, a synthesiser writes the answer."""
