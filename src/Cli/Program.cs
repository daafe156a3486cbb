using DiffusionFunctional.Cli;

return DfnApp.Run(args);
