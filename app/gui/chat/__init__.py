"""The chat view: message model, bubble delegate, composer and the controller that ties them."""
