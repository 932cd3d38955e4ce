"""Reading a corpus on the workers: which files an input names (``sources``), parsing them
into rows in read tasks (``parse``), and the dataset and input check built on them
(``inputs``). The driver lists files and never holds their texts."""
