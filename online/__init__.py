"""online package."""
