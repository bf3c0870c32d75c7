"""kagent-adk, kagent's own agent runtime, driving the scripted model through the seed's acts."""
