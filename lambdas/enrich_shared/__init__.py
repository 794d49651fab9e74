"""Code shared by the three pipeline Lambdas, bundled into each of them.

Keep this package free of third-party imports beyond boto3 (provided by the Lambda
runtime) and Powertools (in every function's requirements), so each bundle stays small.
"""
